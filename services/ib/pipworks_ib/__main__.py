from pipworks_ib.main import main

main()
