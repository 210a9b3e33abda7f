"""One module per route group; each exports ROUTES, a declarative list the app concatenates."""
