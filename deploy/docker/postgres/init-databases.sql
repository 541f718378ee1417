-- One database per service (the names in each service's ZAP_<SVC>_DATABASE_URL). Runs once,
-- when the PostgreSQL volume is empty; `python -m scripts.migrate` also creates any missing one.
CREATE DATABASE zap_auth;
CREATE DATABASE zap_feed;
CREATE DATABASE zap_graph;
CREATE DATABASE zap_media;
CREATE DATABASE zap_moderation;
CREATE DATABASE zap_notification;
