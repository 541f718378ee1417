"""auth: accounts, credentials, tokens, roles; the only owner of PII."""
