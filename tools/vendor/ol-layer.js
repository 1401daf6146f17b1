// The OpenLayers layers the web app uses.
export { default as Vector } from 'ol/layer/Vector.js';
export { default as VectorImage } from 'ol/layer/VectorImage.js';
export { default as Image } from 'ol/layer/Image.js';
export { default as Tile } from 'ol/layer/Tile.js';
