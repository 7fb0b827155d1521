from c2s_lightning.cli import main

main()
