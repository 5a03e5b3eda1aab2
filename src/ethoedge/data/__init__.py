"""ethoedge.data"""
