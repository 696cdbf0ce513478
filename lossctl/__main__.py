from lossctl.cli.app import entry

entry()
