from pipworks_kyc.main import main

main()
