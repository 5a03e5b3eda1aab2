"""ethoedge.quantize"""
