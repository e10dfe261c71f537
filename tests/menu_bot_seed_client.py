#!/usr/bin/python3
# The client of the seed text's 10086 example (the ThreadingTCPServer
# article), which the seed file itself does not carry: this is that
# article's well-known client, unchanged but for Python 3 (print(), input(),
# bytes encoded as UTF-8) and the port, taken from argv instead of 8009.
# Each message goes in one sendall() with no line ending, as in the seed.
import socket
import sys

ip_port = ('127.0.0.1', int(sys.argv[1]))
sk = socket.socket()
sk.connect(ip_port)
sk.settimeout(5)
while True:
    data = sk.recv(1024)
    print('receive:', data.decode('utf-8'))
    inp = input('please input:')
    sk.sendall(inp.encode('utf-8'))
    if inp == 'exit':
        break
sk.close()
