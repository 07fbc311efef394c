-- Loading must fail at the timer.cron line: there is no hour 24.
timer.every(60, function() end)

timer.cron("0 24 * * *", function() end)
