"""ethoedge.models"""
