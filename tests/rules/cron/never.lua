-- Loading must fail: February never has a 30th.
timer.cron("0 0 30 2 *", function() end)
