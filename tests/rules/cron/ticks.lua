-- Cron timers for test_cron_replay.py: a quarter-hour tick, Monday
-- midnights, and an hourly one that cancels itself after three runs.
timer.cron("*/15 * * * *", function()
	log.info("quarter")
end)

timer.cron("0 0 * * 1", function()
	log.info("monday")
end)

local runs, hourly = 0, nil
hourly = timer.cron("0 * * * *", function()
	runs = runs + 1
	log.info("hourly %d", runs)
	if runs == 3 then
		hourly:cancel()
	end
end)
