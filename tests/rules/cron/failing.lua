-- A cron callback that always fails: each failure is reported and the
-- timer keeps its schedule.
timer.cron("0 12 * * *", function()
	error("noon failed")
end)
