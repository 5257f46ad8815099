from gridloop.cli import main

raise SystemExit(main())
