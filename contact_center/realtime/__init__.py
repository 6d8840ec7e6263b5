"""Socket.IO namespaces, one per audience: /agent and /supervisor."""
