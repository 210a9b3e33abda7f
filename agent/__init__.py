"""The in-container agent program: serves the chat contract (see ARCHITECTURE.md)."""
