from epos_bridge.cli import main

raise SystemExit(main())
