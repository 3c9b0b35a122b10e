from fleetlearn.cli import main

main()
