from pipworks_mtbridge.main import main

main()
