"""ZAP's services: one package each, never importing one another."""
