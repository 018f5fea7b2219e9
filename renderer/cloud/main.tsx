import { render } from 'preact';
import { CloudApp } from './app.js';
import './styles.css';

render(<CloudApp />, document.getElementById('app')!);
