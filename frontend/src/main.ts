import { mount } from 'svelte';
import '@xterm/xterm/css/xterm.css';
import './app.css';
import App from './App.svelte';
import { createApi } from './lib/api';

const app = mount(App, { target: document.getElementById('app')!, props: { api: createApi() } });
export default app;
