"""notification: notifications and read state."""
