"""Follow-ups: hand each customer who stalls at a key step to an agent, once."""
