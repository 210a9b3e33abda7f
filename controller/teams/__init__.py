"""Teams: the seed's TOML team format, message routing (keyword, LLM, hybrid) and team status."""
