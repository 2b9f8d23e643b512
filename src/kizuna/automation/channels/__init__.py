"""Delivery channels (email, webhook); LINE or SMS plug in the same way."""
