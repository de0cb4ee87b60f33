from pipworks_gateway.main import main

main()
