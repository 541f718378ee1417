"""The edge: public REST and WebSocket API in front of the gRPC services."""
