from ua_dispatch.cli import main

main()
