-- wrk script for the target's own ceiling: POSTs a forwarded pageview
-- as analytics-forwarder sends it (no seq: only counted).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"topic":"kompose/analytics/pageview","event":{"event":' ..
  '"pageview","timestamp":"2025-10-12T14:30:00Z","data":{' ..
  '"website_id":"web_123","session_id":"sess_456","url":' ..
  '"/blog/article","referrer":"https://google.com","country":"DE",' ..
  '"device":"desktop","browser":"Chrome","os":"Linux"}}}'
