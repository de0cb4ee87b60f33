from pipworks_identity.main import main

main()
