from pipworks_antifraud.main import main

main()
