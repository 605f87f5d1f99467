/* `parlor echo`: the protocol testbed (raw Engine.IO echo and a Socket.IO echo). */
#ifndef PARLOR_ECHO_H
#define PARLOR_ECHO_H

int echo_main(int argc, char **argv);

#endif
