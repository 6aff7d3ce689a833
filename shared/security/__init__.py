"""Who may call the API: tokens with roles, and the audit trail of what they did."""
