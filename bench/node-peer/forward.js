// Forwards every Kompose analytics event to an n8n webhook, the way such
// one-off scripts are written: mqtt.js to listen, axios to post.
//
//   MQTT_URL=mqtt://localhost:1883 \
//   N8N_WEBHOOK_URL=https://n8n.example.com/webhook/kompose-analytics \
//   node forward.js

const mqtt = require('mqtt');
const axios = require('axios');

const MQTT_URL = process.env.MQTT_URL || 'mqtt://localhost:1883';
const N8N_WEBHOOK_URL = process.env.N8N_WEBHOOK_URL;
const TOPIC = 'kompose/analytics/#';

if (!N8N_WEBHOOK_URL) {
  console.error('N8N_WEBHOOK_URL is not set');
  process.exit(1);
}

const client = mqtt.connect(MQTT_URL);

client.on('connect', () => {
  console.log(`Connected to ${MQTT_URL}`);
  client.subscribe(TOPIC, { qos: 1 }, (err) => {
    if (err) {
      console.error(`Subscribe to ${TOPIC} failed: ${err.message}`);
      return;
    }
    console.log(`Subscribed to ${TOPIC}`);
  });
});

client.on('message', async (topic, payload) => {
  try {
    const event = JSON.parse(payload.toString());
    await axios.post(N8N_WEBHOOK_URL, { topic, event });
  } catch (err) {
    console.error(`Failed to forward ${topic}: ${err.message}`);
  }
});

client.on('error', (err) => {
  console.error(`MQTT error: ${err.message}`);
});
