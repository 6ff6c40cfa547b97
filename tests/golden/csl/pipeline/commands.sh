#!/usr/bin/env bash
# Build and run this program. Fabric: 8 x 1 PEs plus memcpy's columns
# (3 west, 2 east) and a 1-PE halo, starting at offsets 4,1.
#   ./commands.sh        kernelc's fabric simulator (no Cerebras SDK needed)
#   ./commands.sh sdk    the Cerebras SDK: cslc, then cs_python on its simulator
#                        (add --cmaddr IP:PORT to the cs_python line for a CS system)
set -e
cd "$(dirname "$0")"
if [ "${1:-sim}" = "sdk" ]; then
  cslc --arch=wse2 ./layout.csl --fabric-dims=15,3 --fabric-offsets=4,1 --params=width:8,height:1 --memcpy --channels=1 -o out
  cs_python run.py --name out --check
else
  python -m kernelc.runtime.fabric cslc --arch=wse2 ./layout.csl --fabric-dims=15,3 --fabric-offsets=4,1 --params=width:8,height:1 --memcpy --channels=1 -o out
  python -m kernelc.runtime.fabric run run.py --name out --check
fi
