from evalsvc.cli import main

main()
