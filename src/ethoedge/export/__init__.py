"""ethoedge.export"""
