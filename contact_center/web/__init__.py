"""Server-rendered pages: login and the agent console."""
