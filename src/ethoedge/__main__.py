from ethoedge.cli import run

run()
