from mentionwatch.cli import main

main()
