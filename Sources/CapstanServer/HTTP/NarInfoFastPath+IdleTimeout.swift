import NIOCore

/// The idle timeout of a connection with a `NarInfoFastPath`, the rule of Hummingbird's connection
/// state handler (which sees only forwarded requests): closed once nothing was read or answered for
/// `idleTimeout`, except while a request read whole is still being answered by the router.
extension NarInfoFastPath {
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { scheduleIdleCheck(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        context.fireChannelInactive()
    }

    func scheduleIdleCheck(_ context: ChannelHandlerContext) {
        guard let idleTimeout, idleCheck == nil else { return }
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: lastActivity + idleTimeout) {
            self.idleCheckFired(context, idleTimeout: idleTimeout)
        }
    }

    private func idleCheckFired(_ context: ChannelHandlerContext, idleTimeout: TimeAmount) {
        idleCheck = nil
        guard context.channel.isActive else { return }
        // The end of that response schedules the next check.
        if !readingRequest, unanswered > 0 { return }
        if NIODeadline.now() >= lastActivity + idleTimeout {
            context.close(promise: nil)
        } else {
            scheduleIdleCheck(context)
        }
    }
}
