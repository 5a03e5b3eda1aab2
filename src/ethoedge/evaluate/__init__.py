"""ethoedge.evaluate"""
