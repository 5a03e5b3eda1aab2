"""ethoedge.distill"""
