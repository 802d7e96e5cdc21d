"""The portal's data doors for outside clients: the REST API and the Arrow Flight service."""
