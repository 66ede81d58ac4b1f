from evalsvc.cli import main

if __name__ == "__main__":  # spawned client processes import this module; they must not re-run the CLI
    main()
