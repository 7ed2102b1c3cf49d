print("advprune")
