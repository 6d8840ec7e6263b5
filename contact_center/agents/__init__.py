"""Users (agents, supervisors, admins), skills, presence and API tokens."""
