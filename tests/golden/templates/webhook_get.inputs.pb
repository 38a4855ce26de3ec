

run_id	

r-7