"""Accounts and permissions for a shared tracking server: who is calling, and what they may do."""
