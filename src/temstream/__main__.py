from temstream.cli import main

raise SystemExit(main())
