from hearth.cli import main

raise SystemExit(main())
