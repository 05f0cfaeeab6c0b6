from entryexit.cli import main

raise SystemExit(main())
